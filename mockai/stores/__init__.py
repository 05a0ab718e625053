"""The API's server-side state: stored responses, stored chat completions, conversations, and
how they keep answers (bounded) and list them (paged).
"""

# Where pictures answered by URL are served (mockai.stores.images; a route of every server).
IMAGES_PATH = "/_mockai/images/"
