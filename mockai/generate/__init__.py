"""The fallback generator: deterministic, plausible answers when nothing scripted matches."""
