"""Task families (captioning, ...): turn dataset rows into requests and model outputs into scores."""
