"""The agents' web inbox: one static page and its assets, served by the Chalice app itself."""
