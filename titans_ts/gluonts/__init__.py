"""gluonts."""
