"""The HTTP server around the pipeline: the app and `MockServer`, the routes, the admin
endpoints, listening sockets, and serving in the foreground.
"""
