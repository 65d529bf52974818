"""The WebSocket + HTTP dashboard and its page."""
