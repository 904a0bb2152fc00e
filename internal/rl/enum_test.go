package rl

import (
	"flag"
	"strings"
	"testing"
)

func TestEnums_Set(t *testing.T) {
	var (
		est Estimator
		kl  KLEstimator
		pl  PolicyLossType
		agg Aggregation
	)
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.Var(&est, "algo.advantage.estimator", "")
	fs.Var(&kl, "algo.kl.estimator", "")
	fs.Var(&pl, "actor.policy_loss_type", "")
	fs.Var(&agg, "actor.loss_agg", "")
	args := []string{"-algo.advantage.estimator", "group_norm", "-algo.kl.estimator", "k3",
		"-actor.policy_loss_type", "gspo", "-actor.loss_agg", "seq_mean_token_mean"}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if est != EstimatorGroupNorm || kl != K3 || pl != PolicyGSPO || agg != SeqMeanTokenMean {
		t.Fatalf("parsed %v %v %v %v", est, kl, pl, agg)
	}
	bad := []struct {
		v    flag.Value
		s    string
		want string
	}{
		{&est, "grpo", `unknown advantage estimator "grpo" (want one of gae, reinforce, reinforce_baseline, rloo, group_norm, dr_grpo)`},
		{&kl, "K1", `unknown KL estimator "K1"`},
		{&pl, "ppo2", `unknown policy loss type "ppo2"`},
		{&agg, "token", `unknown loss aggregation "token"`},
	}
	for _, b := range bad {
		before := b.v.String()
		err := b.v.Set(b.s)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("Set(%q): error %v, want %q", b.s, err, b.want)
		}
		if b.v.String() != before {
			t.Errorf("a failed Set changed the value to %q", b.v.String())
		}
	}
}

func TestEstimator_Properties(t *testing.T) {
	cases := []struct {
		e                       Estimator
		critic, group, whitened bool
	}{
		{EstimatorGAE, true, false, true},
		{EstimatorReinforce, false, false, true},
		{EstimatorReinforceBaseline, false, true, true},
		{EstimatorRLOO, false, true, false},
		{EstimatorGroupNorm, false, true, false},
		{EstimatorDrGRPO, false, true, false},
	}
	if len(cases) != len(estimators) {
		t.Fatalf("%d cases for %d estimators", len(cases), len(estimators))
	}
	for _, c := range cases {
		if c.e.NeedsCritic() != c.critic || c.e.GroupBased() != c.group || c.e.Whitened() != c.whitened {
			t.Errorf("%s: critic %v group %v whitened %v", c.e, c.e.NeedsCritic(), c.e.GroupBased(), c.e.Whitened())
		}
	}
}

func TestConfigs_Validate(t *testing.T) {
	if err := DefaultAdvantageConfig().Validate(); err != nil {
		t.Errorf("default advantage config: %v", err)
	}
	if err := DefaultPolicyLossConfig().Validate(); err != nil {
		t.Errorf("default policy loss config: %v", err)
	}
	if err := DefaultValueLossConfig().Validate(); err != nil {
		t.Errorf("default value loss config: %v", err)
	}
	bad := []struct {
		name string
		err  error
		want string
	}{
		{"DualClip1", PolicyLossConfig{Type: PolicyPPO, ClipLow: 0.2, ClipHigh: 0.2, DualClip: 1, Aggregation: TokenMean}.Validate(), "dual_clip must be > 1"},
		{"ClipLow1", PolicyLossConfig{Type: PolicyPPO, ClipLow: 1, ClipHigh: 0.2, Aggregation: TokenMean}.Validate(), "ε_low < 1"},
		{"NoType", PolicyLossConfig{ClipLow: 0.2, ClipHigh: 0.2, Aggregation: TokenMean}.Validate(), "unknown policy loss type"},
		{"NegativeValueClip", ValueLossConfig{Clip: -1, Aggregation: TokenMean}.Validate(), "value clip"},
		{"Lambda2", AdvantageConfig{Estimator: EstimatorGAE, Gamma: 1, Lambda: 2, SamplesPerPrompt: 1}.Validate(), "lambda"},
	}
	for _, b := range bad {
		if b.err == nil || !strings.Contains(b.err.Error(), b.want) {
			t.Errorf("%s: error %v, want %q", b.name, b.err, b.want)
		}
	}
}
