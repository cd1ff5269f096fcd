mmbenchSamples("g2/s/idx", {"categories": {}});
