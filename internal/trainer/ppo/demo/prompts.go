package demo

import (
	"fmt"
	"math/rand/v2"
)

// A child of a story opening: name and pronouns.
type child struct{ name, subj, poss string }

var (
	trainChildren = []child{
		{"Lily", "She", "her"}, {"Tom", "He", "his"}, {"Ben", "He", "his"}, {"Sue", "She", "her"},
		{"Max", "He", "his"}, {"Mia", "She", "her"}, {"Tim", "He", "his"}, {"Anna", "She", "her"},
		{"Sam", "He", "his"}, {"Lucy", "She", "her"}, {"Jack", "He", "his"}, {"Emma", "She", "her"},
	}
	// evalChildren never appear in training prompts.
	evalChildren = []child{{"Kate", "She", "her"}, {"Bob", "He", "his"}, {"Jane", "She", "her"}, {"Joe", "He", "his"}}
	places       = []string{"park", "garden", "beach", "forest", "farm", "lake", "big hill", "old house"}
	companions   = []string{"mom", "dad", "dog", "cat", "friend", "grandma"}
	wishes       = []string{"play with a red ball", "draw pictures", "look at the stars", "climb trees",
		"bake cookies", "sing songs", "build a big tower", "find shiny rocks"}
)

// openings returns every story opening for the children, in a fixed
// order: three shapes TinyStories begins with, over places, companions
// and wishes.
func openings(children []child) []string {
	var out []string
	for _, c := range children {
		for i, place := range places {
			comp := companions[i%len(companions)]
			wish := wishes[(i+len(c.name))%len(wishes)]
			kind := "girl"
			if c.subj == "He" {
				kind = "boy"
			}
			out = append(out,
				fmt.Sprintf("Once upon a time, there was a little %s named %s. %s liked to %s.", kind, c.name, c.subj, wish),
				fmt.Sprintf("One day, %s went to the %s with %s %s.", c.name, place, c.poss, comp),
				fmt.Sprintf("%s and %s %s were in the %s.", c.name, c.poss, comp, place))
		}
	}
	return out
}

// storyPrompts returns the training and the held-out openings: n and m
// of them, drawn with a fixed seed (training from trainChildren, held-out
// from evalChildren).
func storyPrompts(n, m int) (train, eval []string) {
	pick := func(all []string, k int, seed uint64) []string {
		r := rand.New(rand.NewPCG(seed, 0xd3))
		r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		return all[:min(k, len(all))]
	}
	return pick(openings(trainChildren), n, 1), pick(openings(evalChildren), m, 2)
}
