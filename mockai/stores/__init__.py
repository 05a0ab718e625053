"""The API's server-side state: stored responses, stored chat completions, conversations, and
how they keep answers (bounded) and list them (paged).
"""
