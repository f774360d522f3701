-- wrk script for bench/proxy_bench.py: prints one JSON line with the run's
-- totals, error counts (wrk counts non-2xx/3xx answers as "status" errors)
-- and latency percentiles in microseconds. Requests are wrk's default GET
-- with the headers given by -H.
done = function(summary, latency, requests)
	local e = summary.errors
	io.write(string.format(
		'ZWJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
		'"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
		'"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
		summary.requests, summary.duration, summary.bytes,
		e.connect, e.read, e.write, e.status, e.timeout,
		latency:percentile(50), latency:percentile(90), latency:percentile(99),
		latency:percentile(99.9), latency.max, latency.mean))
end
