-- wrk script for bench/webhook_bench.py: POSTs one AdmissionReview body
-- (file given as the first script argument) over a keep-alive TLS
-- connection (wrk itself counts non-2xx answers); an optional second argument is a delay in milliseconds
-- before each request (per connection) to hold a fixed request rate.
local pause = 0

function init(args)
	local f = assert(io.open(args[1], "rb"))
	wrk.method = "POST"
	wrk.body = f:read("*a")
	wrk.headers["Content-Type"] = "application/json"
	f:close()
	if args[2] ~= nil then
		pause = tonumber(args[2])
	end
end

function delay()
	return pause
end
