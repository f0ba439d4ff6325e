"""Members: the shop's customers enrolled in the program."""
