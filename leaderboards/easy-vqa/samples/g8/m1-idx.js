mmbenchSamples("g8/m1/idx", {"asc": [], "failed": [], "right": [], "wrong": []});
