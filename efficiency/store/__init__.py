"""The results store (SQLAlchemy) and its schema."""
