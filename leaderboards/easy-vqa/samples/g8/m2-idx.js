mmbenchSamples("g8/m2/idx", {"asc": [], "failed": [], "right": [], "wrong": []});
