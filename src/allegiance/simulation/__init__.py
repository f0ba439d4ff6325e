"""The program simulator: replays an order history through programs in isolation."""
