mmbenchSamples("g6/m2/idx", {"asc": [], "failed": [], "right": [], "wrong": []});
