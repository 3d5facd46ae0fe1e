"""From a persona and a conversation to the model's prompt: chat template, history fitting, lorebooks, stop strings."""
