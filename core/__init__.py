"""The contract between the HTTP app (`service`) and the workers (`worker`): what a spec is
(`spec`), the settings, the queue's messages (`queue`), the database (`store`, with its
migrations) and the log format. It imports neither side; both import it.
"""
