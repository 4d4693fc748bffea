# PNG plots of bench/run.sh medians (run from docs/bench/, data from bench/summarize.py).
set terminal pngcairo size 900,450 noenhanced font ",10"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set key top right
set yrange [0:*]

set output "throughput.png"
set title "Deliveries per second, max rate, 64 B, 16 requests in flight (higher is better)"
set ylabel "deliveries/s"
set logscale y
set yrange [*:*]
plot "throughput.dat" using 2:xtic(1) title "Herald (SQLite, durable acks)", "" using 3 title "NATS"
unset logscale y
set yrange [0:*]

set output "latency.png"
set title "End-to-end latency, 1 topic x 1000 subscribers at 200 msg/s; busy: CPU-bound neighbour; slow: 5 % slow readers (lower is better)"
set ylabel "microseconds"
set logscale y
set yrange [*:*]
plot "latency.dat" using 2:xtic(1) title "Herald", "" using 3 title "NATS"

set output "idle.png"
set title "Idle connections: RSS per connection, connect rate, idle CPU"
set ylabel ""
set logscale y
set yrange [*:*]
plot "idle.dat" using 2:xtic(1) title "Herald", "" using 3 title "NATS"
