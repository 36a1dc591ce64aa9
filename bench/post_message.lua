-- wrk script for S5's second pass (bench/idle.py, wrk_post): every request is one form-encoded
-- POST /actors/{id}/messages; the path and the tenant come from the environment.
wrk.method = "POST"
wrk.path = os.getenv("S5_PATH")
wrk.body = "message=s5-wrk"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["tenant"] = os.getenv("S5_TENANT")
