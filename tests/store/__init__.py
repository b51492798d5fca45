"""SessionStore contract and engine tests."""
