"""socialinbox: the serverless social inbox (business logic lives here, app.py stays thin)."""
