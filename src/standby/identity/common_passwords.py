"""A small built-in list of passwords too common to allow (lower-case).

Not a breach corpus: just the passwords every credential-stuffing list starts with."""

from __future__ import annotations

COMMON_PASSWORDS = frozenset(
    """
    123456 12345678 123456789 1234567890 12345678910 0123456789 1234567 111111 11111111
    000000 00000000 123123 123123123 654321 987654321 666666 888888 112233 121212 123321
    password password1 password12 password123 password1234 passw0rd p@ssw0rd p@ssword
    qwerty qwerty123 qwerty1234 qwertyuiop 1q2w3e4r 1q2w3e4r5t 1qaz2wsx zaq12wsx asdfghjkl
    iloveyou princess admin admin123 administrator welcome welcome1 welcome123 letmein
    letmein123 monkey dragon football baseball sunshine shadow master superman batman
    trustno1 abc123 abcd1234 abcdef abcdefgh abcdefghij changeme changeme123 secret
    secret123 default root toor login guest test test1234 testtest 1234qwer qwer1234
    iloveyou1 starwars whatever computer internet michael jennifer jordan23 hunter2
    freedom charlie donald mustang access flower hello123 hellohello solo passpass
    """.split()  # noqa: SIM905 - a word list reads better as text
)
