"""The rater's adapters: SQLModel tables and the SQL store behind the handlers' ports."""
