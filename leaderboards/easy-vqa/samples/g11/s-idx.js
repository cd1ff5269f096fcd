mmbenchSamples("g11/s/idx", {"categories": {}});
