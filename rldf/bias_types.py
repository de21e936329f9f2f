"""A bias type is data: the debater roles that argue from different demographic standpoints, and the referee.

RLDF's released code covers age only [CODE]: a 60-, a 40- and a 20-year-old debate, and a referee asked for a "fair
judgement without any discrimination or bias". The other types follow the same shape [GUESS]; each names the BBQ
category that measures it, so the predict stage scores the type's own category first.

Each role has a short ``key``: the referee answers with one JSON entry per key, and a key is what the transcripts,
pairs and feedback call that debater.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.config import ConfigError

REFEREE_FAIR = "a referee who gives a fair judgement without any discrimination or bias"  # [CODE] referee persona


@dataclass(frozen=True)
class Role:
    key: str  # short name the referee uses in its JSON answer, e.g. "60-year-old"
    description: str  # how the debater is introduced, e.g. "a 60-year-old individual"


@dataclass(frozen=True)
class BiasType:
    name: str  # registry name, e.g. "age"
    label: str  # as written in prompts: "<label> stereotypes and biases"
    roles: tuple[Role, ...]
    referee: str = REFEREE_FAIR
    bbq_category: str | None = None  # BBQ category that measures this bias (common.eval.bbq.CATEGORIES)

    def __post_init__(self) -> None:
        keys = [r.key.lower() for r in self.roles]
        if len(self.roles) < 2 or len(set(keys)) != len(keys):
            raise ValueError(f"bias type {self.name!r} needs at least two debaters with distinct keys, got {keys}")

    @property
    def keys(self) -> list[str]:
        return [r.key for r in self.roles]

    def instruction(self) -> str:
        """The pair/SFT instruction [CODE]: upstream wrote "age"; other types put their label in its place."""
        return f"Identify and discuss the severity of {self.label} stereotypes and biases based on the dialogue."


def _roles(*pairs: tuple[str, str]) -> tuple[Role, ...]:
    return tuple(Role(key, description) for key, description in pairs)


BIAS_TYPES: dict[str, BiasType] = {}


def register_bias_type(bias: BiasType) -> BiasType:
    if bias.name in BIAS_TYPES:
        raise KeyError(f"bias type {bias.name!r} is already registered")
    BIAS_TYPES[bias.name] = bias
    return bias


register_bias_type(BiasType(  # [CODE] Hunter-Wrynn/RLDF API/ and OSS/ scripts
    "age", "age",
    _roles(("60-year-old", "a 60-year-old individual"), ("40-year-old", "a 40-year-old individual"),
           ("20-year-old", "a 20-year-old individual")),
    bbq_category="Age"))
register_bias_type(BiasType(  # [GUESS] the paper names gender among its bias types; roles ours
    "gender", "gender",
    _roles(("man", "a man"), ("woman", "a woman"), ("non-binary person", "a non-binary person")),
    bbq_category="Gender_identity"))
register_bias_type(BiasType(  # [GUESS]
    "race", "race and ethnicity",
    _roles(("Black", "a Black individual"), ("White", "a White individual"), ("Asian", "an Asian individual"),
           ("Hispanic", "a Hispanic individual")),
    bbq_category="Race_ethnicity"))
register_bias_type(BiasType(  # [GUESS]
    "nationality", "nationality",
    _roles(("American", "an American citizen"), ("Chinese", "a Chinese citizen"), ("Nigerian", "a Nigerian citizen"),
           ("German", "a German citizen")),
    bbq_category="Nationality"))
register_bias_type(BiasType(  # [GUESS]
    "religion", "religion",
    _roles(("Christian", "a Christian"), ("Muslim", "a Muslim"), ("Hindu", "a Hindu"), ("atheist", "an atheist")),
    bbq_category="Religion"))
register_bias_type(BiasType(  # [GUESS]
    "disability", "disability",
    _roles(("wheelchair user", "a wheelchair user"), ("autistic person", "an autistic person"),
           ("non-disabled person", "a person without a disability")),
    bbq_category="Disability_status"))
register_bias_type(BiasType(  # [GUESS]
    "sexual_orientation", "sexual orientation",
    _roles(("gay", "a gay man"), ("lesbian", "a lesbian woman"), ("straight", "a straight person"),
           ("bisexual", "a bisexual person")),
    bbq_category="Sexual_orientation"))
register_bias_type(BiasType(  # [GUESS]
    "ses", "socioeconomic status",
    _roles(("low-income", "a low-income worker"), ("middle-class", "a middle-class professional"),
           ("wealthy", "a wealthy business owner")),
    bbq_category="SES"))


def get_bias_type(name: str, where: str = "bias_type") -> BiasType:
    if name not in BIAS_TYPES:
        raise ConfigError(f"{where}: {name!r} is not a registered bias type; known: {sorted(BIAS_TYPES)}. "
                          "Register new ones with rldf.bias_types.register_bias_type")
    return BIAS_TYPES[name]
