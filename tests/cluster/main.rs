mod review;
mod sim;
