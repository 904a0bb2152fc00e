#!/usr/bin/env python3
"""A multi-turn environment in Python, served to gorlhf over the remote
environment protocol (standard library only).

    python3 examples/env_server.py --port 5100 &
    gorlhf train ppo --agent.env remote --agent.env_args url=http://127.0.0.1:5100 \
        --data.prompt_dataset prompts.jsonl --data.label_key label ...

The game: guess a number from 1 to 20 (the dataset's label, else 7) in at
most five tries; after each guess the environment says "higher" or
"lower". A right guess earns 1 - 0.2 per wrong guess before it; five wrong
guesses end the episode with 0. Port an OpenRLHF AgentInstance by putting
its reset() in reset() and its step() in step() below.

Protocol (every call a JSON POST; see internal/env/remote.go):
    /reset {"prompt", "label"}              -> {"episode_id", "observation"}
    /step  {"episode_id", "turn", "action"} -> {"feedback", "reward", "done"}
    /close {"episode_id"}                   -> {}
A step whose turn was already answered must get the same answer again
(clients retry lost answers). Errors: any non-2xx status with a body.
"""

import argparse
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_TRIES = 5


class Game:
    """One episode: reset() and step() are the environment itself."""

    def reset(self, prompt, label):
        self.secret = int(label) if label.strip().isdigit() else 7
        self.tries = 0
        return prompt + "\nGuess a number from 1 to 20.\nGuess: "

    def step(self, action):
        self.tries += 1
        m = re.search(r"-?\d+", action)
        guess = int(m.group()) if m else None
        if guess == self.secret:
            return "\nRight!\n", 1.0 - 0.2 * (self.tries - 1), True
        if self.tries >= MAX_TRIES:
            return "\nOut of tries.\n", 0.0, True
        hint = "not a number" if guess is None else ("higher" if guess < self.secret else "lower")
        return "\n%s.\nGuess: " % hint, 0.0, False


episodes = {}  # episode_id -> [game, last turn, last answer]
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        try:
            req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        except ValueError as e:
            return self.answer(400, {"error": "bad JSON: %s" % e})
        if self.path == "/reset":
            game = Game()
            obs = game.reset(req.get("prompt", ""), req.get("label", ""))
            eid = uuid.uuid4().hex
            with lock:
                episodes[eid] = [game, 0, None]
            return self.answer(200, {"episode_id": eid, "observation": obs})
        if self.path == "/step":
            with lock:
                ep = episodes.get(req.get("episode_id"))
            if ep is None:
                return self.answer(404, {"error": "unknown episode"})
            turn = req.get("turn")
            if turn == ep[1]:  # a retry: the same answer again
                return self.answer(200, ep[2])
            if turn != ep[1] + 1:
                return self.answer(409, {"error": "turn %s, expected %d" % (turn, ep[1] + 1)})
            feedback, reward, done = ep[0].step(req.get("action", ""))
            ep[1], ep[2] = turn, {"feedback": feedback, "reward": reward, "done": done}
            return self.answer(200, ep[2])
        if self.path == "/close":
            with lock:
                episodes.pop(req.get("episode_id"), None)
            return self.answer(200, {})
        self.answer(404, {"error": "no such path %s" % self.path})

    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5100)
    a = ap.parse_args()
    print("serving the guessing game at http://%s:%d" % (a.host, a.port), flush=True)
    ThreadingHTTPServer((a.host, a.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
