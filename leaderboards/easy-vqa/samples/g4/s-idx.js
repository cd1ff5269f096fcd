mmbenchSamples("g4/s/idx", {"categories": {}});
