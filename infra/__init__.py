"""Deploy-time tooling (never shipped to Lambda): the data stack's template and the glue that
turns its outputs and the per-function IAM policies into the Chalice stage configuration."""
