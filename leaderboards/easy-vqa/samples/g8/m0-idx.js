mmbenchSamples("g8/m0/idx", {"asc": [], "failed": [], "right": [], "wrong": []});
