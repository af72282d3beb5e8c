"""Tools the agent can use: files, git, shell; a permission policy and an audit log."""
