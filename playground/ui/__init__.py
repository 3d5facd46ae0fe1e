"""The Gradio web UI: one module per tab, Gradio-free state, views and plots."""
