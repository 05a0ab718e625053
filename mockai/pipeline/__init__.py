"""The request's spine: its types (`Exchange`, `Reply`, `Plan`), the runner of the stages
(`run`), the sources it asks (`decide`, `sources`), the keys that make output reproducible, the
journal, and the worker that makes big answers off the loop.
"""
