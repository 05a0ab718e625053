"""pytest-mockai: a fresh mockai server per test (the `mockai` fixture)."""
