"""Network building blocks: trunk encoders, output heads, and the MultiTaskModel."""
