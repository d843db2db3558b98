"""Offline stand-ins for the AWS side, built from the project's own template and ASL files."""
