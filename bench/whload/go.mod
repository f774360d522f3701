module zerowire/bench/whload

go 1.19
