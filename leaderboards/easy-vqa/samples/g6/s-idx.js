mmbenchSamples("g6/s/idx", {"categories": {}});
