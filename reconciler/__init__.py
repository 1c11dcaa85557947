"""The control loop: Git source → render → server-side-apply plan → apply → prune → drift reports."""
