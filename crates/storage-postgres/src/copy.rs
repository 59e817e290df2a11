//! Copying a whole queue between SQLite and PostgreSQL (`prismq db copy`).
