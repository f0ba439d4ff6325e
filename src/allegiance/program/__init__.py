"""The program document: schema, validation, versions."""
