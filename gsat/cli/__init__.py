"""Entry points: each module parses its arguments, calls down, prints, exits."""
