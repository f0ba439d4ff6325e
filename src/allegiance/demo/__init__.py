"""The demo: the CDNOW purchase history loaded into a demo tenant with an example program."""
