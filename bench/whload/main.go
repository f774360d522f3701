// whload: open-loop load generator for zerowire-webhook benchmarks
// (bench/webhook_bench.py). It POSTs one AdmissionReview body to a URL over
// TLS at a fixed rate, on a fixed number of keep-alive HTTP/1.1 connections
// (as the kube-apiserver calls a webhook), for a fixed time, and prints one
// JSON object: requests sent, answered, errors, achieved rate and latency
// percentiles.
//
// Open loop: request i is due at start + i/rate whatever happened before.
// Latency is measured from that due time, so time a request waited for a
// free connection counts (no coordinated omission); "service" percentiles
// are measured from the moment the request was written instead.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

type sample struct {
	total   time.Duration // from the due time
	service time.Duration // from the send
}

type result struct {
	Rate        float64            `json:"rate_target"`
	Achieved    float64            `json:"rate_achieved"`
	Duration    float64            `json:"duration_s"`
	Conns       int                `json:"connections"`
	Sent        int                `json:"sent"`
	OK          int                `json:"ok"`
	Errors      int                `json:"errors"`
	FirstError  string             `json:"first_error,omitempty"`
	Latency     map[string]float64 `json:"latency_ms"`
	Service     map[string]float64 `json:"service_ms"`
	LateStarts  int                `json:"late_starts"`
	MaxLateness float64            `json:"max_send_lateness_ms"`
}

func pct(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	i := int(q * float64(len(d)-1))
	return float64(d[i]) / float64(time.Millisecond)
}

func summary(d []time.Duration) map[string]float64 {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return map[string]float64{
		"p50": pct(d, 0.50), "p90": pct(d, 0.90), "p99": pct(d, 0.99),
		"p99.9": pct(d, 0.999), "max": pct(d, 1),
	}
}

// readResponse reads one HTTP/1.1 response with a Content-Length from rd
// and appends its body to buf; anything but 200 is an error.
func readResponse(rd *bufio.Reader, buf []byte) ([]byte, error) {
	status, err := rd.ReadString('\n')
	if err != nil {
		return buf, err
	}
	if !strings.HasPrefix(status, "HTTP/1.1 200 ") {
		return buf, fmt.Errorf("status %q", strings.TrimSpace(status))
	}
	length := -1
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return buf, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), "Content-Length") {
			length, err = strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return buf, err
			}
		}
	}
	if length < 0 {
		return buf, fmt.Errorf("answer without Content-Length")
	}
	start := len(buf)
	if cap(buf)-start < length {
		grown := make([]byte, start, start+length)
		copy(grown, buf)
		buf = grown
	}
	buf = buf[:start+length]
	_, err = io.ReadFull(rd, buf[start:])
	return buf, err
}

func main() {
	url := flag.String("url", "", "webhook URL (https://host:port/mutate)")
	bodyFile := flag.String("body", "", "file holding the AdmissionReview to send")
	caFile := flag.String("ca", "", "CA certificate the server's certificate chains to")
	rate := flag.Float64("rate", 1000, "requests per second")
	duration := flag.Duration("duration", 20*time.Second, "how long to send")
	conns := flag.Int("conns", 8, "keep-alive connections")
	expect := flag.String("expect", "\"patch\"", "substring every answer must hold")
	cpuProfile := flag.String("cpuprofile", "", "write the client's own CPU profile here")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	if *url == "" || *bodyFile == "" || *caFile == "" || *rate <= 0 || *conns <= 0 {
		fmt.Fprintln(os.Stderr, "usage: whload -url U -body F -ca F [-rate N] [-duration D] [-conns N]")
		os.Exit(2)
	}
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	caPEM, err := os.ReadFile(*caFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		fmt.Fprintln(os.Stderr, "no certificate in", *caFile)
		os.Exit(1)
	}
	u, err := neturl.Parse(*url)
	if err != nil || u.Scheme != "https" {
		fmt.Fprintln(os.Stderr, "need an https:// URL:", *url)
		os.Exit(2)
	}
	tlsConf := &tls.Config{RootCAs: pool, ServerName: u.Hostname(), NextProtos: []string{"http/1.1"}}
	// The whole request is written in one go: a fixed head, then the body.
	request := append([]byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\n\r\n", u.RequestURI(), u.Host, len(body))), body...)
	want := []byte(*expect)

	n := int(*rate * duration.Seconds())
	period := time.Duration(float64(time.Second) / *rate)
	due := make(chan time.Time, n)
	var mu sync.Mutex
	var samples []sample
	res := result{Rate: *rate, Conns: *conns}
	var wg sync.WaitGroup
	// One goroutine per keep-alive connection, each with its own plain
	// HTTP/1.1 exchange (no net/http: its per-request goroutine hand-offs
	// cost more CPU than this machine can spare); at most conns requests in
	// flight, and a request due while all are busy waits its turn.
	for w := 0; w < *conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *tls.Conn
			var rd *bufio.Reader
			buf := make([]byte, 0, 64<<10)
			for t := range due {
				sent := time.Now()
				var err error
				if c == nil {
					c, err = tls.Dial("tcp", u.Host, tlsConf)
					if err == nil {
						rd = bufio.NewReaderSize(c, 64<<10)
					}
				}
				if err == nil {
					c.SetDeadline(time.Now().Add(10 * time.Second))
					if _, err = c.Write(request); err == nil {
						buf, err = readResponse(rd, buf[:0])
					}
					if err == nil && !bytes.Contains(buf, want) {
						err = fmt.Errorf("answer without %s", *expect)
					}
					if err != nil {
						c.Close()
						c = nil
					}
				}
				end := time.Now()
				mu.Lock()
				if err != nil {
					res.Errors++
					if res.FirstError == "" {
						res.FirstError = err.Error()
					}
				} else {
					res.OK++
					samples = append(samples, sample{end.Sub(t), end.Sub(sent)})
				}
				mu.Unlock()
			}
			if c != nil {
				c.Close()
			}
		}()
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		t := start.Add(time.Duration(i) * period)
		if d := time.Until(t); d > 0 {
			time.Sleep(d)
		} else if late := -d; late > time.Millisecond {
			res.LateStarts++
			if ms := float64(late) / float64(time.Millisecond); ms > res.MaxLateness {
				res.MaxLateness = ms
			}
		}
		due <- t
		res.Sent++
	}
	close(due)
	wg.Wait()
	elapsed := time.Since(start)
	res.Duration = elapsed.Seconds()
	res.Achieved = float64(res.OK) / elapsed.Seconds()
	total := make([]time.Duration, len(samples))
	service := make([]time.Duration, len(samples))
	for i, s := range samples {
		total[i], service[i] = s.total, s.service
	}
	res.Latency = summary(total)
	res.Service = summary(service)
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if res.OK == 0 {
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}
