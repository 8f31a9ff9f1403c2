"""Domain types shared by every layer. Standard library only, no I/O: the agent imports this."""
