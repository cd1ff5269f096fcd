mmbenchSamples("g1/s/idx", {"categories": {}});
