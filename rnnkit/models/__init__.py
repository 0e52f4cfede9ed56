"""Task models: embedding/encoder -> recurrent core -> head."""
