mmbenchSamples("g9/s/idx", {"categories": {}});
