mmbenchSamples("g8/m5/idx", {"asc": [], "failed": [], "right": [], "wrong": []});
