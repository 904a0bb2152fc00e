package main

import (
	"flag"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/trainer/ppo"
)

// registerPPOAsync binds the --train.async_* flags (asynchronous training).
func registerPPOAsync(b *cfgflag.Binder, a *ppo.AsyncConfig) {
	b.Var(&a.Enable, "generate the next batches while the current one trains (batch k from the policy of iteration k − async_queue_size; same results run to run)")
	b.Var(&a.QueueSize, "batches generation runs ahead of training (the policy lag, in iterations)")
	b.Var(&a.MaxStaleness, "regenerate, with the current policy, a prompt's samples that lag the published weights by more than this many versions (0 = async_queue_size)")
}

// registerDemoAsync binds the demo's --train.async_* flags (the RL runs
// of either task).
func registerDemoAsync(fs *flag.FlagSet, a *ppo.AsyncConfig) {
	d := ppo.DefaultConfig().Train.Async
	a.QueueSize = d.QueueSize
	fs.BoolVar(&a.Enable, "train.async_enable", false, "RL runs generate the next batches while the current one trains (see train ppo --help)")
	fs.IntVar(&a.QueueSize, "train.async_queue_size", d.QueueSize, "with --train.async_enable: batches generation runs ahead of training")
	fs.IntVar(&a.MaxStaleness, "train.async_max_staleness", d.MaxStaleness, "with --train.async_enable: the most weight versions a trained sample may lag (0 = the queue size)")
}
